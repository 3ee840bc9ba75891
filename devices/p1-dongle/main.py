# P1 dongle firmware entry point.
import dongle_app

dongle_app.main()
