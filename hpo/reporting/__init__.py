"""`hpo report`: per-configuration tables, figures and Markdown/LaTeX/CSV files of a study.

``tables`` computes (pure DataFrames), ``figures`` computes plot data then draws it,
``render`` formats tables as text, ``write`` puts the files in ``reports/<study>/``.
"""
