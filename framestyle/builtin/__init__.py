"""Built-in plugins. Each module is an ordinary plugin that the host registers
by dotted name (see ``framestyle.host.BUILTIN_PLUGINS``), through the same
hooks a third-party plugin uses; pipeline defaults are ``trylast``."""
