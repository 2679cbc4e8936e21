"""The bundled model's page: its evaluation report and model card as tables (frames).
"""
