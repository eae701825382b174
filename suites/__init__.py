"""The built-in suites: one module per baseline area, each test one control."""
