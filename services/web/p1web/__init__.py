"""Web service of the P1 energy stack: live pages (live values, quarter peak, outputs,
devices), a REST API for the configuration documents (stored, validated, published
retained on ``p1/config/<site>/...``), and a Server-Sent-Events stream of the live
values from MQTT. Writes need the token (``Authorization: Bearer <token>``)."""
