"""Alert rules are managed on their own pages (alerts/views.py) and with `add_alert_rule`;
they are not in the admin, whose access matrix (tests/test_admin_access.py) would need a team
scoping for them first."""
