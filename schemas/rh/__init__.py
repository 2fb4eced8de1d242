"""RH flows: payslip batches (manifest), HR decrees (ACTES nature 3) and employment contracts."""
