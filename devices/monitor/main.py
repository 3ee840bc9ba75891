# Monitor firmware entry point (runs at boot after boot.py).
import monitor_app

monitor_app.main()
