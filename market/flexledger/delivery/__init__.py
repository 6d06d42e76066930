"""From the final result to the meters: activation orders (dispatch), the MQTT broker, omission claims."""
