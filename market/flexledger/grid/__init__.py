"""The grid and what is connected to it: traffic-light files, owners' assets and their meters."""
