from django.apps import AppConfig, apps


class EdgeSessionConfig(AppConfig):
    """``INSTALLED_APPS += ["edge_session.django"]``: with django.contrib.auth, stamps each
    login's time in the session, which the lookup view reports as ``created``."""

    name = "edge_session.django"
    label = "edge_session"
    verbose_name = "edge-session"

    def ready(self):
        if apps.is_installed("django.contrib.auth"):
            from django.contrib.auth.signals import user_logged_in

            from .views import stamp_created

            user_logged_in.connect(stamp_created, dispatch_uid="edge_session.stamp_created")
