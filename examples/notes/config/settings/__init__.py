"""Settings of the notes project: base.py holds what every setup shares,
production.py (config.settings.production) what a deployed host runs."""
