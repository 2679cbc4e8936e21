"""The lab notebook: predictions made before a result is shown, graded against the measured outcome,
and kept with the learner's notes (what worked, what didn't, surprises, open questions).
"""
