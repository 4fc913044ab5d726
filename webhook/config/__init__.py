"""Settings for the whole process, read once into a frozen :class:`~webhook.config.settings.Settings`."""
