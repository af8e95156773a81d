# One image for the operator, the manager and the workers:
#   operator:  kopf run --standalone --all-namespaces -m gaggle_operator.handlers  (deploy/operator.yaml)
#   manager:   gaggle-operator manage --loadtest NAME --namespace NS -- run ...      (operator/gaggle_operator/children.py)
#   workers:   gaggle run SCRIPT --worker --manager-host ...                         (operator/gaggle_operator/children.py)
# tests/project/test_deploy.py lints this file (hadolint) and checks these commands exist in the package.

# Builder: wheels for gaggle and every dependency, so the final stage needs no compiler or index.
# gaggle's wheel has its request path compiled by mypyc (setup.py, GAGGLE_COMPILE=1): a C
# compiler and Python's headers here only (python3-dev: for a Debian python3 without them).
FROM python:3.11-slim AS builder
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev python3-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY worker/ worker/
COPY operator/ operator/
# The dependencies first, installed too: mypyc type-checks the compiled modules against them
# (DL3013: what is installed is this project, whose dependencies its pyproject.toml bounds).
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[operator]" \
    && pip freeze --exclude gaggle > /tmp/requirements.txt \
    && pip wheel --no-cache-dir --wheel-dir /wheels -r /tmp/requirements.txt
RUN pip install --no-cache-dir "mypy==2.4.1" "setuptools==84.2.1" \
    && GAGGLE_COMPILE=1 pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels .

FROM python:3.11-slim
# The pods run as 10001 (runAsUser in deploy/operator.yaml and operator/gaggle_operator/children.py).
RUN groupadd --gid 10001 gaggle \
    && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin gaggle
COPY --from=builder /wheels /wheels
# --no-index: only the wheels built above; the kubernetes client and kopf come with them.
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels
# A read-only root filesystem: no bytecode files; HOME and the working dir are the /tmp emptyDir.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp
WORKDIR /tmp
USER 10001:10001
ENTRYPOINT ["gaggle"]
CMD ["--help"]
