# Minimal `socket` for the MicroPython smoke run: a listener nobody calls.
SOL_SOCKET = 1
SO_REUSEADDR = 2


def getaddrinfo(host, port):
    return [(0, 0, 0, "", (host, port))]


class socket:
    def setsockopt(self, *args):
        pass

    def bind(self, addr):
        pass

    def listen(self, n):
        pass

    def setblocking(self, flag):
        pass

    def accept(self):
        raise OSError(11)

    def close(self):
        pass
