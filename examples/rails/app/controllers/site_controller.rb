# The site: a login form, logout, an account page and a JSON "who am I", with the
# sessions in the server-side store of config.ru.
class SiteController < ActionController::Base
  USERS = {
    "alice" => { password: "wonderland", claims: { "name" => "Alice", "role" => "admin" } },
    "bob" => { password: "builder", claims: { "name" => "Bob", "role" => "user" } },
  }.freeze
  SESSIONS = Rails.application.config.session_options.fetch(:cache)
  INDEX = Mutex.new # the per-user list of sessions (one process here; use your store's atomic ops across processes)

  include EdgeAssertion
  before_action :require_edge_session, only: %i[account whoami sign_out_other_devices]

  def home
    render html: page("Rails site", '<p><a href="/account">Your account</a> · <a href="/login">Sign in</a></p>'.html_safe)
  end

  def login_form
    render inline: <<~ERB, locals: { back: local_path(params[:return_to]).to_s }
      <!doctype html><meta charset="utf-8"><title>Sign in</title><h1>Sign in</h1>
      <%= form_with url: "/login", local: true do |f| %>
        <%= f.text_field :username %> <%= f.password_field :password %>
        <%= f.hidden_field :return_to, value: back %> <%= f.submit "Sign in" %>
      <% end %>
    ERB
  end

  def login
    username = params[:username].to_s
    account = USERS[username]
    unless account && ActiveSupport::SecurityUtils.secure_compare(params[:password].to_s, account[:password])
      return render(html: page("Sign in", "<p>Wrong username or password.</p>".html_safe), status: :unauthorized)
    end
    reset_session # a fresh session ID at login (no fixation): the worker sees the new cookie
    session[:user] = username
    session[:claims] = account[:claims]
    session[:created] = Time.now.to_i # the lookup reports it: the worker's absolute timeout counts from it
    index(username) { |ids| ids | [session.id.private_id] }
    see_other(local_path(params[:return_to]) || "/account")
  end

  def logout
    # Removes the session from the store and answers with a new, empty session's cookie:
    # the worker reads the changed cookie as this session's end (attach mode's logout signal).
    reset_session
    see_other("/")
  end

  def account
    render inline: <<~ERB, locals: { user: @edge_user, source: @edge_source }
      <!doctype html><meta charset="utf-8"><title>Your account</title><h1>Your account</h1>
      <p>Signed in as <b><%= user %></b> (vouched for by <%= source %>).</p>
      <%= button_to "Sign out", "/logout" %>
      <%= button_to "Sign out other devices", "/account/sign-out-other-devices" %>
    ERB
  end

  def whoami
    render json: { user: @edge_user, claims: @edge_claims, source: @edge_source, site_session_user: session[:user] }
  end

  # Ends the user's sessions on other devices, on the site only: the worker finds out at
  # its next lookup (REVALIDATE_AFTER), as it would for any session the site ends.
  def sign_out_other_devices
    user = session[:user]
    return render(json: { error: "no_site_session" }, status: :conflict) unless user
    mine = session.id.private_id
    others = []
    index(user) do |ids|
      others = ids - [mine]
      [mine]
    end
    ended = others.count { |id| SESSIONS.delete("_session_id:#{id}") } # the key ActionDispatch's CacheStore uses
    render json: { ended: ended }
  end

  private

  # Changes the list of a user's session (private) IDs, dropping those that have expired.
  def index(user)
    key = "edge_site_sessions:#{user}"
    INDEX.synchronize do
      ids = (SESSIONS.read(key) || []).select { |id| SESSIONS.exist?("_session_id:#{id}") }
      SESSIONS.write(key, yield(ids))
    end
  end

  # A relative Location: redirect_to would prefix the Host the request reached this server
  # with, which behind the worker may be the origin's own name rather than the site's.
  def see_other(path)
    response.set_header("Location", path)
    head :see_other
  end

  def local_path(path)
    path.is_a?(String) && path.match?(%r{\A/(?![/\\])}) ? path : nil
  end

  def page(title, body)
    ERB::Util.html_escape(title).then { |t| "<!doctype html><meta charset=\"utf-8\"><title>#{t}</title><h1>#{t}</h1>".html_safe + body }
  end
end
