"""What the tools run: the command line's checks (``cli``), the CPU trainer and evaluators
(``cpu``), the data check (``data_check``), VOC data (``voc``), AP reports (``ap_report``), the
demo data set (``demo_data``), fitting settings to small data (``fit_settings``) and the one-line
errors they raise (``errors``). Needs YOLOX."""
