# One image for every dematbus role (api, worker, watch, simulators): the command picks the role.
# Stage 1 builds the sdist and, from it, the wheel (what tests/packaging checks); stage 2 installs
# that wheel, not the source tree.
FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir "build>=1.2,<2"
COPY pyproject.toml MANIFEST.in README.md ./
COPY bus ./bus
COPY connectors ./connectors
COPY schemas ./schemas
RUN python -m build --outdir /dist .

FROM python:3.11-slim
COPY --from=build /dist/*.whl /tmp/wheels/
RUN pip install --no-cache-dir /tmp/wheels/dematbus-*.whl && rm -rf /tmp/wheels
WORKDIR /app
ENV DEMATBUS_DATA_DIR=/data
VOLUME ["/data"]
ENTRYPOINT ["dematbus"]
CMD ["--help"]
