"""Airplay reports written out: the play log and the per-track summary as CSV, the report as JSON
(the web page's and the API's), and a PDF with a chart of plays per day. The numbers come from
services/reports.py; these modules only lay them out."""
