# Mini switch firmware entry point.
import switch_app

switch_app.main()
