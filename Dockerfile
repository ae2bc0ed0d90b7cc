# syntax=docker/dockerfile:1
# turkey-pipeline on the official Apache Airflow image.
#
#   docker build -t turkey-pipeline:latest .                       # target "cpu" (the default, last stage)
#   docker build -t turkey-pipeline:latest-gpu --target gpu .      # tensorflow[and-cuda] for the GPU worker
#
# docker compose builds both (see docker-compose.yaml). Stages:
#   base    official apache/airflow image + the project's runtime settings
#   wheel   builds the turkey-pipeline wheel (the `ml` library, its Airflow glue `turkey_airflow` with the
#           plugins' entry points, and the `turkey` CLI)
#   gpu     base + requirements.lock with tensorflow-cpu swapped for tensorflow[and-cuda] + the wheel
#   cpu     base + requirements.lock (tensorflow-cpu) + the wheel
# DAGs are baked into /opt/airflow/dags; the plugins come with the installed package (no plugins folder).

ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
ARG TENSORFLOW_VERSION=2.21.0

# --------------------------------------------------------------------------------------------- base
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION} AS base
ENV TURKEY_DATA_ROOT=/opt/turkey/data \
    TURKEY_ARTIFACTS_ROOT=/opt/turkey/artifacts \
    GX_ANALYTICS_ENABLED=false \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
USER root
# The shared volumes' mount points, writable by the airflow user (uid 50000 / gid 0, as in the official image).
RUN mkdir -p /opt/turkey/data/landing /opt/turkey/artifacts \
 && chown -R airflow:0 /opt/turkey && chmod -R g+rwX /opt/turkey
USER airflow

# --------------------------------------------------------------------------------------------- wheel
FROM base AS wheel
# (made by the airflow user, so the in-tree build can write there)
RUN mkdir -p /tmp/turkey-src /tmp/wheels
COPY --chown=airflow:0 pyproject.toml README.md /tmp/turkey-src/
COPY --chown=airflow:0 ml /tmp/turkey-src/ml
COPY --chown=airflow:0 plugins /tmp/turkey-src/plugins
RUN cd /tmp/turkey-src && pip wheel --no-deps --wheel-dir /tmp/wheels .

# --------------------------------------------------------------------------------------------- gpu
FROM base AS gpu
ARG AIRFLOW_VERSION
ARG TENSORFLOW_VERSION
# Same lock file, but TensorFlow with the CUDA libraries instead of tensorflow-cpu (pip wheels for cuDNN,
# cuBLAS, ... via the and-cuda extra: no CUDA toolkit in the image; the host needs only the NVIDIA driver
# and the NVIDIA Container Toolkit).
RUN --mount=type=bind,source=requirements.lock,target=/tmp/requirements.lock \
    grep -v -E '^tensorflow-cpu==' /tmp/requirements.lock >/tmp/requirements-gpu.lock \
 && pip install "apache-airflow==${AIRFLOW_VERSION}" -r /tmp/requirements-gpu.lock \
      "tensorflow[and-cuda]==${TENSORFLOW_VERSION}" \
 && rm /tmp/requirements-gpu.lock
RUN --mount=type=bind,from=wheel,source=/tmp/wheels,target=/tmp/wheels pip install --no-deps /tmp/wheels/*.whl
COPY --chown=airflow:0 dags /opt/airflow/dags
# Last, so a new commit does not invalidate the dependency layers (ml.manifest.git_commit reads it).
ARG GIT_COMMIT=""
ENV TURKEY_TF_FLAVOUR=gpu TURKEY_GIT_COMMIT=${GIT_COMMIT}

# --------------------------------------------------------------------------------------------- cpu (default)
FROM base AS cpu
ARG AIRFLOW_VERSION
RUN --mount=type=bind,source=requirements.lock,target=/tmp/requirements.lock \
    pip install "apache-airflow==${AIRFLOW_VERSION}" -r /tmp/requirements.lock
RUN --mount=type=bind,from=wheel,source=/tmp/wheels,target=/tmp/wheels pip install --no-deps /tmp/wheels/*.whl
COPY --chown=airflow:0 dags /opt/airflow/dags
# Last, so a new commit does not invalidate the dependency layers (ml.manifest.git_commit reads it).
ARG GIT_COMMIT=""
ENV TURKEY_TF_FLAVOUR=cpu TURKEY_GIT_COMMIT=${GIT_COMMIT}
