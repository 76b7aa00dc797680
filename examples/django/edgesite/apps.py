from django.apps import AppConfig


class EdgeSiteConfig(AppConfig):
    name = "edgesite"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Connects the user_logged_in receiver that stamps a session's creation time.
        from . import edge_session  # noqa: F401
