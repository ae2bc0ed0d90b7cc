"""The operator's console: model registry pages served inside the Airflow API server.

``console_app.create_app()`` builds the FastAPI app the plugin (``plugins/turkey_console.py``) mounts at
``/turkey`` (its routes); ``console_access`` holds login, rights, confirm tokens and opening the registry;
``console_pages`` renders the pages with ``console_html``; ``console_links`` holds the task extra links that
point at the console. Module names carry a ``console_`` prefix because Airflow's plugin loader also
imports every file in ``plugins/`` as a top-level module named after the file.
"""
