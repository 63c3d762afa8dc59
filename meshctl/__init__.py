"""The ``copytrade`` command: run the mesh locally, the scripted demo, and user management."""
