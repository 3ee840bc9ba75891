"""The REST API and the pages, one router per resource; :func:`p1web.app.create_app`
includes them all.

- :mod:`.sites`: the sites known and what the token sent may do.
- :mod:`.config`: every document of a site, its site and peak documents, and the
  per-device documents (made from :data:`p1web.models.SCOPES`).
- :mod:`.outputs`: the outputs document, whole or one output at a time.
- :mod:`.live`: the latest values, the closed quarters, the event stream, ``/healthz``.
- :mod:`.pages`: the HTML pages and their scripts and styles.
"""
