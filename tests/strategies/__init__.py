"""Hypothesis strategies shared by the property tests: prices (``pricing``) and the plans,
wallets, holds and event sequences of metering scenarios (``metering``)."""
