"""console_html: the inline lineage chart."""



def test_the_models_page_plots_the_curve(tmp_path):
    from turkey_airflow.console.console_html import line_chart

    svg = line_chart([("v1", 0.91), ("v2", 0.93), ("v3", None), ("v4", 0.92)])
    assert svg.startswith("<svg") and svg.count("<circle") == 3 and "v2: 0.9300" in svg
    assert "No figure yet" in line_chart([("v1", None)])
