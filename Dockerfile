# larmkedja: every process is `larmkedja <command>` (ingest, engine, api, simulate, gateway …).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir --no-deps --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY larmkedja ./larmkedja
COPY ingest ./ingest
COPY alarms ./alarms
COPY api ./api
COPY simulators ./simulators
COPY gateway ./gateway
COPY entrypoints ./entrypoints
COPY devstack ./devstack
RUN pip install --no-cache-dir --no-deps . && useradd --system --uid 10001 larm
USER larm
ENTRYPOINT ["larmkedja"]
CMD ["--help"]
