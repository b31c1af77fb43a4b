"""What the tools run: the command line's checks (``cli``), the CPU trainer (``cpu_trainer``) and
evaluators (``cpu_evaluators``), checkpoints written whole and read with one-line errors
(``checkpoint_files``, ``checkpoints``, ``loss_state``), several processes (``distributed``), Ctrl-C
and SIGTERM (``interrupt``), one run per output folder (``folder_claim``), the data check
(``data_check``), VOC data (``voc``), AP reports (``ap_report``), the demo data set (``demo_data``),
fitting settings to small data (``fit_settings``) and the one-line errors they raise (``errors``).
Needs YOLOX."""
