"""What every page shares: page anatomy, the sidebar model picker and cached model loading, the
prompt box, hand-off between pages and the table of contents (registry).
"""
