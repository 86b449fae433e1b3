"""The papers' networks, one module per family, and the registry of them (:mod:`.registry`).

``cryo_companion.models.registry.get_spec(name)`` gives a registered network's configuration
class, model class and example batch; ``build_model(name, config)`` builds one.
"""
