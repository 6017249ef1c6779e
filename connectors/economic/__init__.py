"""Visma e-conomic: the HTTP adapter (``client``) apart from voucher and debtor bodies."""
