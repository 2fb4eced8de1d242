# One image for every dematbus role (api, worker, watch, simulators): the command picks the role.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bus ./bus
COPY connectors ./connectors
COPY schemas ./schemas
RUN pip install --no-cache-dir .
ENV DEMATBUS_DATA_DIR=/data
VOLUME ["/data"]
ENTRYPOINT ["dematbus"]
CMD ["--help"]
