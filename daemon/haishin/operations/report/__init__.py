"""The monthly report (issue 15 item 6): figures per channel, 12-month trend charts, the
mail on the first day of each month to each 情報管理者 and to the 統括管理者."""
