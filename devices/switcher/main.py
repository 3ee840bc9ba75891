# Switcher firmware entry point.
import switcher_app

switcher_app.main()
