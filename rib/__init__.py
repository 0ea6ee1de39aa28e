"""Adj-RIB-In, Loc-RIB, decision process, Adj-RIB-Out and policy (a later issue)."""
