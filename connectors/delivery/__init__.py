"""Delivery of documents to their recipient (payslips to each agent's digital safe)."""
