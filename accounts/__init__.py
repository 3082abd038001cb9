"""Accounts: who may sign in and how (directory sign-in, MFA, lockout, sessions, API tokens,
access reviews). Sits above environments (a role is granted per site) and below everything that
signs or serves a page."""
