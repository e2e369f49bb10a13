"""The ticket side: directory, staff, urgent call-tickets, the support dashboard and API."""
