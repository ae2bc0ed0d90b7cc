"""The operator's console: model registry pages served inside the Airflow API server.

``console_app.create_app()`` builds the FastAPI app the plugin (``plugins/turkey_console.py``) mounts at
``/turkey``; ``console_links`` holds the task extra links that point at it. Module names carry a
``console_`` prefix because Airflow's plugin loader also imports every file in ``plugins/`` as a
top-level module named after the file.
"""
