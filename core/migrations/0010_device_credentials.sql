-- MQTT credentials of devices (forewarn device credentials): the device's password is shown
-- once and kept only as Mosquitto's own PBKDF2-SHA512 hash ($7$…), which 'forewarn mqtt files'
-- writes to Mosquitto's passwd file. One row per device (the pair is the identity); a new
-- password replaces the old one; deleting the row (or the device) revokes it.

CREATE TABLE IF NOT EXISTS device_credentials (
    tenant    text NOT NULL,
    device    text NOT NULL,
    mqtt_hash text NOT NULL CHECK (mqtt_hash ~ '^\$7\$[0-9]+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$'),
    issued_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, device),
    FOREIGN KEY (tenant, device) REFERENCES devices (tenant, id) ON DELETE CASCADE
);
