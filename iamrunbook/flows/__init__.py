"""What the notebooks call, one module per runbook step: gather (01), legacy (02), apply (03), verify (04),
offboard (05), review (06), the reports they show, and the session every notebook opens. Never the UI.
"""
