"""MongoDB storage: the only package that imports pymongo."""
