"""Shared code of the P1 energy stack: settings, topics, payloads, MQTT, logging, metrics, persistence."""

CONTRACT_VERSION = 1
