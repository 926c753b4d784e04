DROP TABLE config_overrides;
