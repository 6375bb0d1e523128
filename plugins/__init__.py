"""First-party plugins, registered through the ``medsynbench`` entry-point group like any other."""
