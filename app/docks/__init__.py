"""The main window's dock panels, one module each."""
