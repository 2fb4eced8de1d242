"""Publication of actes (R2131-1 CGCT): the stamp (`stamp`), the stage connector (`connector`) and
the public addresses of the registry (`urls`), shared with its routes (connectors/inbound/publication)."""
