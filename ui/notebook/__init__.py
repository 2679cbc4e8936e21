"""The Lab notebook page: the entries as a table and a timeline, calibration, export and import."""
