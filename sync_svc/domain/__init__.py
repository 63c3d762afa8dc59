"""Pure rules of the sync service: sources, signals, validation and leader positions."""
