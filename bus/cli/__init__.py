"""`dematbus` command line (Typer + Rich), one module per group of commands:

- `stack`: run the bus (`up`, `worker`, `api`, `simulators`, `watch`, `migrate`) and the campaigns
  on a private stack (`bench`, `chaos`), `doctor`;
- `admin`: collectivités and their publication, groups, API keys, webhooks, `journal verify`;
- `documents`: `deposit`, `status` (through the API), `inspect`, `pes-memory`;
- `operations`: `errors`, `replay`, `annuler` (through the API, operator key);
- `reports`: `report`.

`common` holds what they share (the app, the store, the API client's configuration); the modules
import nothing from each other.
"""

# Each module registers its commands; `--help` lists their panels in this order.
from bus.cli import stack  # noqa: F401  # isort: skip
from bus.cli import admin, documents, operations, reports  # noqa: F401  # isort: skip
from bus.cli.common import app


def main() -> None:
    app()
