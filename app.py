"""Streamlit entry point: navigation over pages/ and the shared sidebar."""

import streamlit as st

from plmcore import ui

st.set_page_config(page_title="PLM fine-tuning", page_icon="🧬", layout="wide")
ui.require_sign_in()

pages = st.navigation(ui.app_pages())
ui.guard(ui.sidebar)
pages.run()
