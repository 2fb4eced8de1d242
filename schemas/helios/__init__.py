"""HELIOS flow (PES v2 accounting files sent to the DGFiP): reading, acknowledgements, deposit rules.

* `pes`: streaming read + XSD validation of a PES_Aller (`read_pes_aller`, `check_idcoll`).
* `acquit`: PES_ACQUIT parsing and building (`parse_acquit`, `build_acquit`, `acquit_file_name`).
* `retour`: minimal PES_Retour reading (`parse_pes_retour`).
* `metadata` / `deposit`: the deposit rules of the HELIOS flow (`check_deposit`).
* `generate` / `measure`: synthetic valid PES_Aller files and a peak-RSS helper (tests, benchmarks).
"""
