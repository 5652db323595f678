# Load the Celery app with Django, so tasks are registered and `shared_task` binds to it.
from raceweb.celery import app as celery_app

__all__ = ["celery_app"]
